# Which framed requests may run `invocations()` now, in one scorer process (mlserve_lean.py's connections).
#
# Python runs one thread's bytecode at a time (the GIL). A model whose predict keeps the process busy gains
# nothing from a second request running beside it: both wait for the GIL in turns, the process switches
# between them, and each request takes longer (measured on the iris example at 16 connections: 311 req/s
# with 16 requests running at once, 404 with at most 2). A model that waits (an LLM behind an API, I/O)
# gains a lot, so the gate cannot simply run one request at a time.
#
# The rule: a request starts at once when none is running; when one ends, the oldest waiting starts at once
# (it is already read, so the scorer never waits for mlserve's next frame). While some run and others wait,
# a watcher looks every tick at how much CPU this process used since its last look: under BUSY of one core
# means the running ones wait on something other than the CPU, so one more starts. A process that keeps a
# core busy runs its requests one after another; one that waits lets them overlap within a few ticks.
import threading
import time

TICK = 0.004
# While the process stays busy the watcher looks less often, up to this (its wake-ups take the GIL too).
SLOW_TICK = 0.032
BUSY = 0.6
# How often a waiting request checks whether its sender gave up.
GONE_POLL = 0.5


class Gate:
    def __init__(self, cpu=time.process_time, now=time.monotonic, watcher=True):
        self.cpu = cpu
        self.now = now
        self.watcher = watcher
        self.lock = threading.Lock()
        self.running = 0
        # Waiting requests, oldest first: each an Event set when it may start.
        self.waiting = []
        self.watching = False

    def enter(self, gone=None):
        """Blocks until this request may run: True. False when `gone()` said its sender gave up first (the
        request is then not run, nor counted)."""
        with self.lock:
            if self.running == 0 and not self.waiting:
                self.running = 1
                return True
            turn = threading.Event()
            self.waiting.append(turn)
            if self.watcher and not self.watching:
                self.watching = True
                threading.Thread(target=self.watch, name="mlserve-gate", daemon=True).start()
        while not turn.wait(GONE_POLL):
            if gone is not None and gone():
                with self.lock:
                    if turn in self.waiting:
                        self.waiting.remove(turn)
                        return False
                # It was let in between the check and the lock: it runs.
                break
        return True

    def leave(self):
        with self.lock:
            self.running -= 1
            self.start_next()

    def start_next(self):
        """With the lock held: lets the oldest waiting request start."""
        if self.waiting:
            self.running += 1
            self.waiting.pop(0).set()

    def tick(self, cpu_seconds, wall_seconds):
        """One look of the watcher: this process used `cpu_seconds` of CPU in the last `wall_seconds`. Lets one
        more request start if the process was mostly idle. False once nothing waits (the watcher stops)."""
        with self.lock:
            if not self.waiting:
                self.watching = False
                return False
            if self.running == 0 or cpu_seconds < BUSY * wall_seconds:
                self.start_next()
            return True

    def watch(self):
        cpu, now = self.cpu(), self.now()
        interval = TICK
        while True:
            time.sleep(interval)
            cpu_then, then = cpu, now
            cpu, now = self.cpu(), self.now()
            idle = cpu - cpu_then < BUSY * (now - then)
            interval = TICK if idle else min(interval * 2, SLOW_TICK)
            if not self.tick(cpu - cpu_then, now - then):
                return
