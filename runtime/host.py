"""The machine the runtime runs on: its target triple and CPU features, checked against an artifact's.

`read_artifact` calls `check_target` and `check_cpu_features` on every manifest it loads, so that an
artifact compiled for another CPU fails with one sentence instead of an illegal instruction. CPU
features are read from /proc/cpuinfo on Linux; elsewhere they are unknown and the check passes.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache

from .errors import ArtifactError

# LLVM's feature names (what codegen records) -> the names Linux gives the same feature in /proc/cpuinfo.
LLVM_TO_CPUINFO = {
    # x86
    "64bit": "lm",
    "avx512bf16": "avx512_bf16",
    "avx512bitalg": "avx512_bitalg",
    "avx512fp16": "avx512_fp16",
    "avx512vbmi2": "avx512_vbmi2",
    "avx512vnni": "avx512_vnni",
    "avx512vp2intersect": "avx512_vp2intersect",
    "avx512vpopcntdq": "avx512_vpopcntdq",
    "avxvnni": "avx_vnni",
    "amx-bf16": "amx_bf16",
    "amx-int8": "amx_int8",
    "amx-tile": "amx_tile",
    "bmi": "bmi1",
    "crc32": "sse4_2",
    "lzcnt": "abm",
    "pclmul": "pclmulqdq",
    "prfchw": "3dnowprefetch",
    "rdrnd": "rdrand",
    "sahf": "lahf_lm",
    "sha": "sha_ni",
    "sse3": "pni",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    # aarch64
    "neon": "asimd",
    "fp-armv8": "fp",
    "crc": "crc32",
    "dotprod": "asimddp",
    "fullfp16": "fphp",
    "fp16fml": "asimdfhm",
    "rdm": "asimdrdm",
    "lse": "atomics",
    "rcpc": "lrcpc",
    "jsconv": "jscvt",
    "complxnum": "fcma",
}
ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "x86", "i686": "x86"}
OS_NAMES = {"linux": "linux", "darwin": "darwin", "macos": "darwin", "windows": "windows", "win32": "windows"}
GPU_ARCH_PREFIXES = ("nvptx", "amdgcn")  # device code: the host CPU does not run it


def host_target() -> str:
    """This machine's target triple in LLVM's spelling, e.g. "x86_64-unknown-linux-gnu"."""
    machine = platform.machine().lower() or "unknown"
    arch = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if sys.platform.startswith("linux"):
        return f"{arch}-unknown-linux-{_linux_abi()}"
    if sys.platform == "darwin":
        return f"{'arm64' if arch == 'aarch64' else arch}-apple-darwin"
    if sys.platform == "win32":
        return f"{arch}-pc-windows-msvc"
    return f"{arch}-unknown-{re.sub(r'[0-9.]+$', '', sys.platform)}"


def _linux_abi() -> str:
    try:
        return "gnu" if os.confstr("CS_GNU_LIBC_VERSION") else "musl"
    except (ValueError, OSError):  # musl has no such confstr name
        return "musl"


@lru_cache(maxsize=1)
def host_cpu_features() -> frozenset[str] | None:
    """This machine's CPU features, in both /proc/cpuinfo's and LLVM's spelling; None where unknown.

    On Linux they are the flags every processor in /proc/cpuinfo reports. On other systems (macOS,
    Windows) Ember does not read them and returns None: the check is then permissive, and an artifact
    built for features this CPU lacks may stop with an illegal instruction.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as stream:
            return parse_cpuinfo(stream.read())
    except OSError:
        return None


def parse_cpuinfo(text: str) -> frozenset[str] | None:
    """The features common to every processor listed in /proc/cpuinfo text ("flags" on x86,
    "Features" on ARM), plus their LLVM names; None if the text lists none."""
    common: set[str] | None = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            common = flags if common is None else common & flags
    if common is None:
        return None
    return frozenset(common | {llvm for llvm, cpuinfo in LLVM_TO_CPUINFO.items() if cpuinfo in common})


def check_cpu_features(
    manifest: Mapping, host: Iterable[str] | None = None, source: str = "the artifact"
) -> None:
    """Raise ArtifactError naming the CPU features `manifest["cpu_features"]` needs and `host` lacks.

    `host` defaults to `host_cpu_features()`; where that is unknown (not Linux) nothing is raised.
    Artifacts for a GPU target (nvptx, amdgcn) need no host CPU features and pass.
    """
    if _is_gpu_target(manifest.get("target", "")):
        return
    if host is None:
        host = host_cpu_features()
        if host is None:
            return
    available = set(host)
    missing = list(dict.fromkeys(f for f in manifest.get("cpu_features", ()) if f not in available))
    if missing:
        raise ArtifactError(
            f"{source} needs CPU features this machine lacks: {', '.join(missing)}; "
            "recompile the model on this machine"
        )


def check_target(manifest: Mapping, host: str | None = None, source: str = "the artifact") -> None:
    """Raise ArtifactError if `manifest["target"]` names another architecture or operating system than
    `host` (default `host_target()`). Vendor and ABI are not compared; GPU targets pass."""
    target = manifest.get("target", "")
    if _is_gpu_target(target):
        return
    host = host_target() if host is None else host
    if _arch_and_os(target) != _arch_and_os(host):
        raise ArtifactError(
            f"{source} was compiled for {target}, but this machine is {host}; "
            "recompile the model on this machine"
        )


def _is_gpu_target(target: str) -> bool:
    return target.lower().startswith(GPU_ARCH_PREFIXES)


def _arch_and_os(triple: str) -> tuple[str, str]:
    """("x86_64", "linux") from "x86_64-unknown-linux-gnu", "x86_64-linux-gnu" or "AMD64-pc-win32"."""
    arch, *rest = triple.lower().split("-")
    system = next(
        (name for part in rest for prefix, name in OS_NAMES.items() if part.startswith(prefix)), "unknown"
    )
    return ARCH_ALIASES.get(arch, arch), system
