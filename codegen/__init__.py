"""Ember's code generators: kernel `Program` -> LLVM IR (CPU shared library) or PTX (NVIDIA GPUs).

Empty until the compiler issue lands; the folder exists so the package layout is final.
"""
