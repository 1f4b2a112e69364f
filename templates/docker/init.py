# PID 1 of an mlserve image: starts mlserve, forwards every stop signal to it, reaps every orphan the
# kernel hands to PID 1 (zombies never pile up), and exits with mlserve's own exit status.
import os
import signal
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def main(argv):
    child = None

    def forward(sig, _frame):
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    # PID 1 of a namespace drops a signal it has no handler for: the handlers are in place before mlserve
    # starts, and the signals wait (blocked) until the child's pid is known, so an early stop is not lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    for sig in FORWARDED:
        signal.signal(sig, forward)
    child = os.fork()
    if child == 0:
        for sig in FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        os.execv(argv[0], argv)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)

    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if pid == child:
            # mlserve is gone: whatever it left is killed with the container; report its status.
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
