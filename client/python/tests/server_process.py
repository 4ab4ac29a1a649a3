"""A real hookstreamd child process for the client tests.

The binary comes from $HOOKSTREAMD (ctest sets it); the port is read from the server's start line
"... event=server.started ... grpc_port=N". Start it from the main thread: it runs under
`setpriv --pdeathsig KILL`, so it dies with the thread that spawned it even if the test process
is killed and no teardown runs.
"""

import os
import re
import shutil
import signal
import subprocess
import time

PORT_RE = re.compile(r"event=server\.started .*grpc_port=(\d+)\n")


def wait_for(condition, timeout, what, interval=0.005):
    """Polls `condition` until it returns something truthy (returned) or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class ServerProcess:
    def __init__(self, data_dir, log_path, binary=None):
        self.binary = binary or os.environ.get("HOOKSTREAMD")
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise RuntimeError("set HOOKSTREAMD to the hookstreamd binary (got %r)" % self.binary)
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc = None
        self.port = 0
        self.starts = 0

    def start(self, port=0, timeout=30):
        """Starts the server (port 0: any free port) and waits for its start line."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        args = [self.binary, "--data_dir=" + self.data_dir, "--grpc_listen=127.0.0.1:%d" % port,
                "--http_listen=off"]
        setpriv = shutil.which("setpriv")
        if setpriv:
            args = [setpriv, "--pdeathsig", "KILL", "--"] + args
        self.starts += 1
        # Each start appends to the same log; remember where this start's output begins.
        with open(self.log_path, "ab") as log:
            offset = log.tell()
            log.write(b"==== start %d: %s\n" % (self.starts, " ".join(args).encode()))
            offset = log.tell()
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, close_fds=True)

        def started():
            m = PORT_RE.search(self._read_log(offset))
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                raise AssertionError("hookstreamd exited with %s before starting; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            return None

        self.port = wait_for(started, timeout, "the hookstreamd start line")
        if port:
            assert self.port == port, (self.port, port)
        return self.port

    def terminate(self, timeout=30):
        """SIGTERM (drain) and waits for the exit; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("hookstreamd did not exit within %s s of SIGTERM; log:\n%s"
                                 % (timeout, self.log()))

    def stop(self):
        """Teardown: ends the server whatever state it is in (by its PID)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def _read_log(self, offset=0):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def log(self):
        return self._read_log()
