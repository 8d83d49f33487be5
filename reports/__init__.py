"""Reports: the paper's tables and figures rebuilt from our results (``lr report``).

- ``reports.collect``  results (metrics.json ledger, speed.json, optionally W&B) -> DataFrames
- ``reports.paper``    the paper's reported numbers (``paper_data/``) and the explicit mapping to ours
- ``reports.tables``   Tables 1, 2, 4, 5, 9-11 and paper-vs-ours, as LaTeX / Markdown / CSV
- ``reports.figures``  Figure 5 / Figure 6 style plots and speed vs quality (PDF + PNG)
- ``reports.latex``    booktabs rendering, report.tex, pdflatex
- ``reports.build``    all of it into one output directory

``reports/benchmarks/`` holds the measured results of ``lr bench`` (JSON, not code).
"""
