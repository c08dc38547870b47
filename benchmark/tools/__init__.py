"""Measurement and check scripts, run as ``python -m msabench.tools.<name>``: no package module imports them.

Each prints the numbers a claim in ``docs/`` rests on (``docs/performance.md`` names which):

- ``bench_data``: the data pipeline, generation to one pass over the training split.
- ``bench_protocols``: the protocols and training policies on a MOSI-shaped batch.
- ``bench_profile``: where one run's time goes.
- ``bench_memory``, ``bench_epoch_memory``: a run's peak memory by phase, and its memory epoch by epoch.
- ``bench_sweep``, ``bench_executors``: parallel sweep workers, and Ray's overhead against local processes.
- ``bench_text_view``: the stored-text leak and its fix, every method with both text views.
- ``bench_batchnorm``: a finished run's checkpoint tested with and without its running statistics.
- ``bench_mmsa``: ``lf_dnn`` beside MMSA's own LF_DNN loop.
- ``gpu_check``: every method, protocol and training policy for a few steps on a GPU machine.
"""
