# The fork server both of mlserve's loaders run (preload.py: a model's scorers; env_loader.py: the models'
# loaders), with their protocol: mlserve asks for forks on the control socket ({"op": OP, "id": N, ...}),
# and it reports each fork's pid ("forked") and exit ("exited"). Loaded by file (preload.py's sibling).
import gc
import json
import os
import selectors
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent():
    """SIGKILL this process when the process that forked it dies (Linux); False when it is already gone."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # not Linux: the loader kills its scorers when the control socket closes
        pass
    return os.getppid() == parent


class Channel:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buffer = b""

    def send(self, **message):
        self.sock.sendall((json.dumps(message) + "\n").encode())

    def receive(self):
        """Complete lines read so far; None when mlserve closed the channel."""
        chunk = self.sock.recv(65536)
        if not chunk:
            return None
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


def read_error(fd):
    """What a fork wrote on its error pipe before exiting (None: nothing), and the pipe closed."""
    if fd is None:
        return None
    try:
        text = os.read(fd, 4096).decode(errors="replace").strip()
    except OSError:
        text = ""
    finally:
        os.close(fd)
    return text or None


def serve_forks(channel, ready, ops, run, report_errors=False):
    """Sends `ready` (a message's fields), then forks `run(message)` for each message whose op is in `ops`
    until mlserve closes the channel (returns 0) or SIGTERM (SystemExit 0). A fork exits with run's code
    (None: 0); with `report_errors`, the exception that ended a fork is reported with its exit."""
    # Objects that exist now never move to a younger generation again: the forks' reference counting and
    # collections then leave the pages they share with this process alone.
    gc.collect()
    gc.freeze()
    me = os.getpid()
    children = {}  # pid: the read end of its error pipe (None: errors are not reported)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    channel.send(**ready)

    selector = selectors.DefaultSelector()
    selector.register(channel.sock, selectors.EVENT_READ, "control")
    selector.register(wake_read, selectors.EVENT_READ, "child")
    try:
        while True:
            for key, _ in selector.select():
                if key.data == "child":
                    try:
                        os.read(wake_read, 4096)
                    except BlockingIOError:
                        pass
                    continue
                messages = channel.receive()
                if messages is None:
                    return 0
                for message in messages:
                    if message.get("op") not in ops:
                        continue
                    error_read, error_write = os.pipe() if report_errors else (None, None)
                    pid = os.fork()
                    if pid == 0:
                        if error_read is not None:
                            os.close(error_read)
                        # The fork: none of this process's plumbing.
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        signal.signal(signal.SIGTERM, signal.SIG_DFL)
                        selector.close()
                        channel.sock.close()
                        os.close(wake_read)
                        os.close(wake_write)
                        if not die_with_parent() or os.getppid() != me:
                            os._exit(1)
                        os._exit(run_fork(run, message, error_write))
                    if error_write is not None:
                        os.close(error_write)
                        os.set_blocking(error_read, False)
                    children[pid] = error_read
                    channel.send(event="forked", id=message["id"], pid=pid)
            # Report every fork that has exited (SIGCHLD woke the loop, or it ended meanwhile).
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                error = read_error(children.pop(pid, None))
                extra = {"error": error} if report_errors else {}
                if os.WIFSIGNALED(status):
                    channel.send(event="exited", pid=pid, code=None, signal=signal.Signals(os.WTERMSIG(status)).name, **extra)
                else:
                    channel.send(event="exited", pid=pid, code=os.waitstatus_to_exitcode(status), signal=None, **extra)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def run_fork(run, message, error_write):
    """Runs the fork's work; its exit code. An exception is printed, and written on `error_write` if given."""
    code = 0
    try:
        code = run(message) or 0
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else 1
    except BaseException as error:
        import traceback

        traceback.print_exc()
        if error_write is not None:
            try:
                os.write(error_write, f"{type(error).__name__}: {error}".encode()[:2000])
            except OSError:
                pass
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code
