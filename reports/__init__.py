"""Reports: the paper's tables and figures rebuilt from our results (``lr report``).

- ``reports.records``  one metrics.json / speed.json -> checked rows (the speed.json shapes)
- ``reports.collect``  results (metrics.json ledger, speed.json, optionally W&B) -> DataFrames
- ``reports.paper``    the paper's reported numbers (``paper_data/``) and the explicit mapping to ours
- ``reports.names``    display names, read from the registries (variants, tasks, backbones, representations)
- ``reports.table_model`` cells, rows, tables (LaTeX / Markdown / CSV), cell lookup, significance marks
- ``reports.tables``   Tables 1, 2, 3-4, 5, 9-11 in the paper's layouts, rows derived from the variant
                       registry, and every table at once (``all_tables``)
- ``reports.paper_vs_ours`` the paper's numbers beside ours, per table
- ``reports.stats``    paired t-test on per-query scores, Holm's correction
- ``reports.figures``  Figure 5 / Figure 6 style plots and speed vs quality (PDF + PNG)
- ``reports.latex``    booktabs rendering with captions and labels, the preamble snippet, report.tex,
                       pdflatex, page images (pdftoppm)
- ``reports.findings`` the paper's seven findings checked on ours (findings.md)
- ``reports.wandb_offline`` W&B offline run directories read without network (``--wandb DIR``)
- ``reports.build``    all of it into one output directory

Table numbering (a decision, applied everywhere: ``lr variants``, README, file names,
findings.md). The paper's own numbers, as ``reports/paper_data/README.md`` (copied with the
paper's CSVs) assigns them: Table 1 speed, Table 2 main results, **Tables 3-4** the symmetry
ablations A1-A3 (``paper_table4_ablations.csv``; our file ``table3_4_ablations``), **Table 5**
the KL alignment loss, reported per representation dense / sparse / hybrid, which is also
where the A4 breakdown lives (``paper_table5_kl.csv``; our file ``table5_kl``), Tables 9-11 per
data set, Figures 5 and 6. Earlier versions of the suite called KL "Table 4" in ``lr variants``
and the README while the report wrote ``table4_ablations``; both now follow the paper's
README, and ``lr_core.variants.register_variant`` refuses a ``paper_table`` that disagrees with
the report table a variant declares.

``reports/benchmarks/`` holds the measured results of ``lr bench`` (JSON, not code).
"""
