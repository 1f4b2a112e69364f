# Which framed requests run now, in one scorer process (mlserve_lanes.py's connections).
#
# Python runs one thread's bytecode at a time (the GIL). A model whose predict keeps the process busy gains
# nothing from a second request running beside it: both wait for the GIL in turns, the process switches
# between them, and each request takes longer (measured on the iris example at 16 connections: 311 req/s
# with 16 requests running at once, 404 with at most 2). A model that waits (an LLM behind an API, I/O)
# gains a lot, so the gate cannot simply run one request at a time.
#
# The rule: a request starts at once when none is running. A thread that ends a request starts the oldest
# waiting one itself (it holds its slot on), so a busy process runs its requests one after another on one
# thread, with no other thread woken. Requests that wait are not even read: they stay in the connection
# until a running thread is done or the watcher lets one more start. The watcher looks every tick at how
# much CPU the process used since its last look: under BUSY of one core while requests run means they wait
# on something other than the CPU, so one more starts (on a thread of its own). A process that keeps a core
# busy runs its requests one after another; one that waits lets them overlap within a few ticks. "Used"
# counts the time its threads waited for a CPU as well (other processes had it): a CPU-bound model on a
# crowded machine is busy, not waiting. When a look finds the process busy with several requests running,
# each thread that ends one gives its slot back instead of starting the next, down to one.
# After REST_AFTER with nothing running, the watcher stops looking until a request starts.
import threading
import time

from mlserve_gil import SmallFile

# The watcher's tick after it let a request start (more may follow soon) ...
TICK = 0.004
# ... doubling, while it lets none start, up to this (its wake-ups take the GIL too).
SLOW_TICK = 0.032
BUSY = 0.6
# After this long with nothing running the watcher sleeps until a request starts (an idle scorer, one of
# many models in a server, wakes nobody).
REST_AFTER = 1.0


class ThreadClock:
    """Seconds this process's Python threads ran on a CPU or waited, runnable, for one (each thread's
    /proc/self/task/<id>/schedstat, summed over the threads alive now; a thread that ended keeps what it
    added). The files are read with the GIL held (mlserve_gil.py). Falls back to the process's CPU time
    where /proc or libc do not answer."""

    def __init__(self):
        self.seen = {}
        self.total = 0
        self.read = SmallFile()
        self.works = self.schedstat(threading.get_native_id()) is not None

    def schedstat(self, tid):
        """Nanoseconds thread `tid` ran plus waited to run, or None."""
        fields = (self.read(f"/proc/self/task/{tid}/schedstat") or b"").split()
        return int(fields[0]) + int(fields[1]) if len(fields) >= 2 else None

    def __call__(self):
        if not self.works:
            return time.process_time()
        seen = {}
        for thread in threading.enumerate():
            tid = thread.native_id
            value = self.schedstat(tid) if tid is not None else None
            if value is not None:
                seen[tid] = value
                self.total += value - self.seen.get(tid, 0)
        self.seen = seen
        return self.total / 1e9


class Gate:
    """The count of running requests (each holds a slot), under the lock that the lanes' queues share."""

    def __init__(self, cpu=None, now=time.monotonic, watcher=True):
        self.cpu = ThreadClock() if cpu is None else cpu
        self.now = now
        self.watcher = watcher
        self.lock = threading.Lock()
        # The watcher rests on it while nothing runs; a request that starts then wakes it.
        self.work = threading.Condition(self.lock)
        self.resting = False
        self.running = 0
        # The watcher's last look found the process busy: threads that end a request give back extra slots.
        self.busy = False
        # Connections (mlserve_lanes.Lane): each can say whether a request waits on it and start one.
        self.lanes = set()
        self.watching = False

    def add(self, lane):
        with self.lock:
            self.lanes.add(lane)
            if self.watcher and not self.watching:
                self.watching = True
                threading.Thread(target=self.watch, name="mlserve-gate", daemon=True).start()

    def began(self):
        """With the lock held: one more request runs (a resting watcher wakes)."""
        self.running += 1
        if self.resting:
            self.resting = False
            self.work.notify()

    def remove(self, lane):
        with self.lock:
            self.lanes.discard(lane)

    def tick(self, cpu_seconds, wall_seconds):
        """One look: this process used `cpu_seconds` of CPU in the last `wall_seconds`. Lets one more waiting
        request start if none runs or the process was mostly idle: True when one did."""
        with self.lock:
            self.busy = self.running > 0 and cpu_seconds >= BUSY * wall_seconds
            if self.busy:
                return False
            for lane in self.lanes:
                if lane.promote():
                    return True
            return False

    def rest(self):
        """Waits, with nothing running, until a request starts."""
        with self.lock:
            while self.running == 0:
                self.resting = True
                self.work.wait()

    def watch(self):
        # Each look reads the clock and peeks at the connections with the GIL held (mlserve_gil.py).
        cpu, now = self.cpu(), self.now()
        interval, idle_since = SLOW_TICK, now
        while True:
            time.sleep(interval)
            cpu_then, then = cpu, now
            cpu, now = self.cpu(), self.now()
            interval = TICK if self.tick(cpu - cpu_then, now - then) else min(interval * 2, SLOW_TICK)
            if self.running > 0:
                idle_since = now
            elif now - idle_since >= REST_AFTER:
                self.rest()
                cpu, now = self.cpu(), self.now()
                interval, idle_since = SLOW_TICK, now
