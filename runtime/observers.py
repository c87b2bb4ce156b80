"""Hooks through which the frontend watches compiled programs run, without importing code loaders.

`RUN_OBSERVER` is None (runs are not timed) or a profiler's callback (ember.profiler installs it while
its state is 'run'). After each successful run of a CPU or CUDA program it is called as
RUN_OBSERVER(program, kernels, start_ns, end_ns, kernel_spans): `program` the program's `what`,
`kernels` its layout's kernel names, times from time.perf_counter_ns(), and `kernel_spans` a list of
(kernel, start_ns, end_ns) where the device can time each kernel, else None.
"""

RUN_OBSERVER = None
