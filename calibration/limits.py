"""Every size limit on input from outside the project, stated once.

Calibration files, case exports and shared links come from other people's machines, so each
reader checks these limits *before* it allocates anything in proportion to the input: a file
is read at most ``limit + 1`` bytes, a table's columns are counted (a product of parent
cardinalities) before any column is enumerated, a CSV is read record by record and given up
on at the first record over a limit. Each limit that is reached gives a clear
:class:`~model.errors.KnowpainError` naming the limit, never a ``MemoryError`` or a traceback.

The same numbers are listed in ``SECURITY.md`` and ``calibration/FORMAT.md``; a test checks
that those documents quote them.
"""

from __future__ import annotations

from model.errors import CalibrationError, CaseImportError

__all__ = [
    "CALIBRATION_PROBLEMS_SHOWN",
    "CASE_PROBLEMS_KEPT",
    "CASE_PROBLEMS_SHOWN",
    "LINK_MAX_CHARS",
    "LINK_MAX_VALUES",
    "MAX_CALIBRATION_BYTES",
    "MAX_CASE_BYTES",
    "MAX_CASE_COLUMNS",
    "MAX_CASE_ROWS",
    "MAX_CLIQUE_ENTRIES",
    "MAX_EXPLANATION_STATES",
    "MAX_NESTING",
    "MAX_NETWORK_BYTES",
    "MAX_NETWORK_CLIQUE_ENTRIES",
    "MAX_NETWORK_ENTRIES",
    "MAX_NETWORK_STATES",
    "MAX_NETWORK_TABLE_ENTRIES",
    "MAX_NODES",
    "MAX_PARENTS",
    "MAX_STATES",
    "MAX_TABLE_COLUMNS",
    "MAX_TABLE_ENTRIES",
    "NETWORK_ROW_SUM_TOLERANCE",
    "PROBABILITY_FLOOR",
    "SOFT_EVIDENCE_FLOOR",
]

# ---- calibration files (calibration.loader) --------------------------------------------------
#: Largest calibration file or companion file read, in bytes (the shipped default is ~30 KB).
MAX_CALIBRATION_BYTES = 4 * 1024 * 1024
#: Deepest nesting of tables and arrays in a calibration file (the format needs about 6).
MAX_NESTING = 32
#: Most nodes in one network.
MAX_NODES = 500
#: Most states of one node.
MAX_STATES = 100
#: Most parents of one node (any parameterisation).
MAX_PARENTS = 12
#: Most columns (parent configurations: the product of the parents' state counts) of a node.
MAX_TABLE_COLUMNS = 65_536
#: Most numbers in one node's full table (columns times states).
MAX_TABLE_ENTRIES = 1_048_576
#: Most numbers in the largest table exact inference must build: a clique of the network's
#: moral graph after triangulation (estimated with the min-degree heuristic), where all
#: causes (role cause) share one clique because every diagnosis computes their joint
#: posterior. Each such table is held once per query row.
MAX_CLIQUE_ENTRIES = 4_194_304
#: Most joint states of the hidden nodes (roles latent and cause) scored one by one for their
#: most probable explanation (every other unobserved node summed out): 16 yes/no hidden
#: nodes. With more, the explanation is the hidden nodes' part of the most probable state of
#: every unobserved node (max-product on the junction tree), whose cost does not grow with
#: their number.
MAX_EXPLANATION_STATES = 65_536
#: Smallest non-zero probability accepted in a calibration; an exact 0 is allowed (with a
#: warning). Anything between would be numerically indistinguishable from zero after a few
#: products, so it is refused instead of silently turning into 0 or 0.5.
PROBABILITY_FLOOR = 1e-12
#: Problems listed in a calibration error message (the rest are counted).
CALIBRATION_PROBLEMS_SHOWN = CalibrationError.limit

# ---- network files for the any-network API (model.inference.formats) -----------------------
#: Largest BIF/XMLBIF text read, in bytes, after gunzip (the biggest bnlearn network,
#: diabetes, is 5.5 MB); a gzip file is decompressed at most this far, so a gzip bomb or
#: ``/dev/zero`` stops at the limit.
MAX_NETWORK_BYTES = 64 * 1024 * 1024
#: Most states of one variable (the most among the bnlearn networks is mildew's 100).
MAX_NETWORK_STATES = 256
#: Most numbers in one variable's table (its states times its parents' configurations),
#: counted before the table is built (the largest among the bnlearn networks is mildew's
#: 280,000).
MAX_NETWORK_TABLE_ENTRIES = 2_097_152
#: Most numbers in all the tables of one network together (the most among the bnlearn
#: networks is mildew's 547,158): a BIF ``default`` row fills a whole table from a few
#: bytes, so tables are counted as they are read.
MAX_NETWORK_ENTRIES = 8_388_608
#: Most entries of all the clique tables of one junction tree together, counted while the
#: graph is triangulated, before any table is built (the most among the bnlearn networks is
#: munin1's 128,367,903, its largest clique 44,800,000 states). Exact inference holds these
#: tables (times the batch for many rows), so a network beyond it is refused rather than
#: left to run out of memory (a 24 x 24 grid of yes/no nodes needs 1.8 million million).
MAX_NETWORK_CLIQUE_ENTRIES = 268_435_456
#: Most a row of a table may differ from summing to 1, the tolerance pgmpy's ``check_model``
#: allows (the bnlearn networks' rows are within 1.5e-07). Tables are used as written, never
#: renormalised.
NETWORK_ROW_SUM_TOLERANCE = 0.01

# ---- soft evidence (model.inference.evidence) ------------------------------------------------
#: Smallest non-zero likelihood weight, relative to the largest weight of the same node.
SOFT_EVIDENCE_FLOOR = 1e-12

# ---- cases CSV (calibration.cases) -----------------------------------------------------------
#: Largest cases file, in bytes (32 MB: a clinic export of 250,000 cases is about 24 MB).
MAX_CASE_BYTES = 32 * 1024 * 1024
#: Most data rows (cases) in one file.
MAX_CASE_ROWS = 250_000
#: Most fields in any row of a cases file (header included).
MAX_CASE_COLUMNS = 1_000
#: Problems kept in memory for one file (the rest are only counted).
CASE_PROBLEMS_KEPT = 200
#: Problems listed in a case import error message (the rest are counted).
CASE_PROBLEMS_SHOWN = CaseImportError.limit

# ---- shared links (model.text.report) --------------------------------------------------------
#: Longest query string read from a shared link: characters in all keys and values together.
LINK_MAX_CHARS = 8_192
#: Most answers in one link: key-value pairs plus the items of the ``flags`` list.
LINK_MAX_VALUES = 256
