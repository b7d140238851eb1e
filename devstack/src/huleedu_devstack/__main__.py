"""Command line: ``python -m huleedu_devstack up`` and ``python -m huleedu_devstack run -- CMD...``.

up   start the stack, print its URLs and ``export`` lines, run until Ctrl-C/SIGTERM/SIGHUP,
     then stop it cleanly.
run  start the stack, run CMD with HULEEDU_DEVSTACK_POSTGRES_URL, _REDIS_URL and
     _KAFKA_BOOTSTRAP added to its environment, forward SIGINT/SIGTERM/SIGHUP to it,
     stop the stack when CMD exits and exit with CMD's exit code (128+N if killed by N).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from huleedu_devstack.backend import KAFKA_BOOTSTRAP_ENV, POSTGRES_URL_ENV, REDIS_URL_ENV
from huleedu_devstack.errors import DevstackError
from huleedu_devstack.stack import Stack, open_stack

USAGE = """\
usage: python -m huleedu_devstack up
       python -m huleedu_devstack run -- CMD [ARGS...]

  up    start PostgreSQL, Redis and a Kafka-protocol broker; print their URLs; stop on Ctrl-C
  run   start them, run CMD with HULEEDU_DEVSTACK_* set, stop them when CMD exits

The backend is chosen from the environment (HULEEDU_DEVSTACK_BACKEND=local|docker,
or all of HULEEDU_DEVSTACK_POSTGRES_URL/_REDIS_URL/_KAFKA_BOOTSTRAP for running services).
"""

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
#: si_code above 0 means the kernel generated the signal (e.g. Ctrl-C at the terminal);
#: the child is in our process group and got it from the terminal too.
_SI_USER_MAX = 0


def stack_env(stack: Stack) -> dict[str, str]:
    return {
        POSTGRES_URL_ENV: stack.postgres_url,
        REDIS_URL_ENV: stack.redis_url,
        KAFKA_BOOTSTRAP_ENV: stack.kafka_bootstrap,
    }


def _exit_on_signal(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


def _start(out: int) -> Stack:
    """Start the stack; SIGTERM/SIGHUP during startup exit cleanly (start() cleans up)."""
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    stack = open_stack()
    stream = sys.stdout if out == 1 else sys.stderr
    print(f"HuleEdu devstack ({stack.backend} backend) is up:", file=stream)
    print(f"  postgres: {stack.postgres_url}", file=stream)
    print(f"  redis:    {stack.redis_url}", file=stream)
    print(f"  kafka:    {stack.kafka_bootstrap}", file=stream)
    for key, value in stack_env(stack).items():
        print(f"export {key}={shlex.quote(value)}", file=stream)
    stream.flush()
    return stack


def _stop(stack: Stack) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        stack.stop()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def cmd_up() -> int:
    stack = _start(out=1)
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            print("Press Ctrl-C to stop.", flush=True)
            received = signal.sigwait(_STOP_SIGNALS)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        print(f"\n{signal.Signals(received).name}: stopping the devstack...", flush=True)
    finally:
        _stop(stack)
    print("devstack stopped.", flush=True)
    return 0


def cmd_run(command: Sequence[str]) -> int:
    stack = _start(out=2)
    try:
        env = {**os.environ, **stack_env(stack)}
        watched = _STOP_SIGNALS | {signal.SIGCHLD}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        try:
            try:
                child = subprocess.Popen(
                    list(command),
                    env=env,
                    preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_SETMASK, old),
                )
            except OSError as exc:
                print(f"huleedu_devstack run: cannot run {command[0]!r}: {exc}", file=sys.stderr)
                return 127
            while child.poll() is None:
                info = signal.sigtimedwait(watched, 1.0)
                if info is None or info.si_signo == signal.SIGCHLD:
                    continue
                if info.si_code <= _SI_USER_MAX:
                    try:
                        child.send_signal(info.si_signo)
                    except ProcessLookupError:
                        pass
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        code = child.returncode
        return 128 - code if code < 0 else code
    finally:
        _stop(stack)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    try:
        if command == "up" and not rest:
            return cmd_up()
        if command == "run":
            if rest[:1] == ["--"]:
                rest = rest[1:]
            if not rest:
                print("huleedu_devstack run: missing CMD\n\n" + USAGE, file=sys.stderr)
                return 2
            return cmd_run(rest)
    except DevstackError as exc:
        print(f"huleedu_devstack {command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
