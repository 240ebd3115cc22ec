"""Audit the installed (locked) dependencies against the PyPI advisory database.

Exit 1 when a known vulnerability is found. When the database cannot be reached (no
network, or a registry mirror that does not serve the per-version advisory pages), say so
plainly and exit 0: an audit that could not run is reported, never passed off as clean.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner", "off"],
            capture_output=True, text=True, timeout=600,
        )
    except subprocess.TimeoutExpired:
        print("audit: the advisory database did not answer within 10 minutes: NOT checked")
        return 0
    try:
        report = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        print("audit: the advisory database could not be reached: NOT checked")
        print((proc.stderr or "").strip().splitlines()[-1:] or "")
        return 0
    deps = report.get("dependencies", [])
    checked = [d for d in deps if "skip_reason" not in d]
    vulnerable = [d for d in checked if d.get("vulns")]
    for d in vulnerable:
        ids = ", ".join(v["id"] for v in d["vulns"])
        print(f"audit: {d['name']} {d['version']}: {ids}")
    if vulnerable:
        print(f"audit: {len(vulnerable)} locked package(s) with known vulnerabilities")
        return 1
    if not checked:
        print(f"audit: the advisory database was not reachable from here: NOT checked "
              f"({len(deps)} packages skipped)")
        return 0
    print(f"audit: no known vulnerabilities in {len(checked)} checked package(s)"
          + (f"; {len(deps) - len(checked)} could not be checked" if len(deps) > len(checked)
             else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
