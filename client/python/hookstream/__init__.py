"""hookstream Python client: auto-resuming subscribe and retrying publish over gRPC.

The gRPC stubs (``hookstream.v1.event_stream_pb2`` and ``event_stream_pb2_grpc``) are generated
at build time into ``build/client/python/gen/hookstream/v1/``; put ``build/client/python/gen``
and ``client/python`` on ``PYTHONPATH`` (or set ``HOOKSTREAM_PYTHON_GEN`` to the gen directory).
See README.md.
"""

import os as _os
import pkgutil as _pkgutil

# `hookstream` is split over two directories: this hand-written package and the generated
# `hookstream/v1` stubs in the build tree. Let the package span both.
__path__ = _pkgutil.extend_path(__path__, __name__)
_gen = _os.environ.get("HOOKSTREAM_PYTHON_GEN")
if _gen:
    _gen_pkg = _os.path.join(_gen, "hookstream")
    if _os.path.isdir(_gen_pkg) and _gen_pkg not in __path__:
        __path__.append(_gen_pkg)

try:
    from hookstream.v1 import event_stream_pb2 as pb  # noqa: E402
    from hookstream.v1 import event_stream_pb2_grpc as pb_grpc  # noqa: E402
except ImportError as _e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "hookstream: the generated stubs hookstream.v1.event_stream_pb2(_grpc) were not found "
        "or could not be loaded (%s). Build them with `cmake --build build --target "
        "hookstream_python_stubs`, then put build/client/python/gen on PYTHONPATH (or set "
        "HOOKSTREAM_PYTHON_GEN to it), and use an interpreter that has grpcio and protobuf "
        "(Debian: /usr/bin/python3 with python3-grpcio, python3-protobuf)." % _e
    ) from _e

from hookstream.client import (  # noqa: E402
    Backoff,
    HookstreamError,
    SequenceBreakError,
    Subscription,
    SubscriptionError,
    channel,
    make_event,
    publish,
    subscribe,
)

__all__ = [
    "Backoff",
    "HookstreamError",
    "SequenceBreakError",
    "Subscription",
    "SubscriptionError",
    "channel",
    "make_event",
    "pb",
    "pb_grpc",
    "publish",
    "subscribe",
]
