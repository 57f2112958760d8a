"""A sweep folder → report: reading and verifying runs (read.py), statistics, comparisons,
tables, figures and REPORT.md."""
