"""Builds the compiled decoder of the capture (_decode.c) next to its source:

    python -m tracking_sync.capture.build_decoder          # build, when the source is newer
    python -m tracking_sync.capture.build_decoder --optional  # the same; without gcc or the
                                                             # headers: a warning, exit 0
    python -m tracking_sync.capture.build_decoder --clean  # remove what it built

`make decoder` runs it, and make test, test-unit, test-integration and bench first (they need
it); make demo, stack-up and airflow run it with --optional. So does the Docker image's build
(docker/Dockerfile).
gcc (or $CC) and the interpreter's own headers (sysconfig's include path: python3-dev on
Debian's Python) are all it needs; nothing is downloaded. Without the module the capture runs
the pure-Python decoder (tracking_sync.capture.decoding), slower, with the same output.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).with_name("_decode.c")
MODULE = SOURCE.with_name("_decode" + sysconfig.get_config_var("EXT_SUFFIX"))


def up_to_date() -> bool:
    return MODULE.exists() and MODULE.stat().st_mtime >= max(
        SOURCE.stat().st_mtime, Path(__file__).stat().st_mtime
    )


def build(quiet: bool = False) -> Path:
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").exists():
        raise SystemExit(
            f"Python.h is not in {include}: install this Python's headers (Debian: apt-get install "
            "python3-dev) to build the compiled decoder; the capture runs without it, slower"
        )
    command = [
        *shlex.split(os.environ.get("CC", "gcc")),
        "-O2",
        "-shared",
        "-fPIC",
        "-std=c11",
        "-Wall",
        "-Werror",
        f"-I{include}",
        str(SOURCE),
        "-o",
        str(MODULE),
    ]
    if not quiet:
        print(" ".join(command))
    subprocess.run(command, check=True)
    return MODULE


def clean() -> None:
    for built in SOURCE.parent.glob("_decode.*.so"):
        built.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clean", action="store_true", help="remove the built module")
    parser.add_argument("--optional", action="store_true", help="when it cannot be built, say so and exit 0")
    args = parser.parse_args()
    if args.clean:
        clean()
        return
    if up_to_date():
        print(f"{MODULE.name} is up to date", file=sys.stderr)
        return
    try:
        print(f"built {build()}", file=sys.stderr)
    except (SystemExit, OSError, subprocess.CalledProcessError) as error:
        if not args.optional:
            raise
        print(
            f"the compiled decoder was not built ({error}): the change capture runs the "
            "Python decoder, slower; install gcc and Python's headers, then `make decoder`",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
