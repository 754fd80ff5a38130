"""Partner performance reports and network analytics: SQL aggregations over the ledger, in three formats.

See docs/reports.md for the definition of every figure.
"""
