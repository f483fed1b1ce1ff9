"""Run control: one `RunConfig` (`config`), the admission decision (`admission`), the per-batch
work (`batch`), the one run loop (`loop`) that every executor runs (`executors`: this process or
a process pool; `dask`: a Dask cluster whose workers run the loop over their partitions), huge
documents as a step of that loop (`huge`), the accounting (`accounting`), and what happens
before and after the batches (`runner`, `finish`).

May import: every package but `evaluate` and `cli`.
"""
