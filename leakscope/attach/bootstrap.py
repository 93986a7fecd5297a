"""The few lines that run inside the target first, at a safe point, with the GIL held.

They do as little as possible there, because the target waits meanwhile: start one
daemon thread, ``leakscope-attach``, and return.  The thread connects to the tool's
socket, imports the agent from the tool's own install (the private directory holds
a ``leakscope`` link to it; the directory is on ``sys.path`` only while that import
runs), runs it, and then cleans up: the ``leakscope`` modules that it imported are
removed from ``sys.modules`` (those the target had imported itself stay), the socket
is closed, and a last ``bye`` message lists the other modules that importing
leakscope brought in (standard-library modules, left in place: removing a module
that the target may have imported since would give it two copies).

The code never raises into the target: a failure before the socket is connected
is written to the private directory's ``bootstrap-error`` file, after that it is
sent as an ``error`` message.  Nothing is printed to the target's streams.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ERROR_FILE", "THREAD_NAME", "one_liner", "source"]

THREAD_NAME = "leakscope-attach"
"""The name of the one thread leakscope starts in the target."""

ERROR_FILE = "bootstrap-error"
"""The file (in the private directory) where the bootstrap writes a failure it cannot send."""

_TEMPLATE = """
def _leakscope_attach(directory, address, config):
    import sys
    modules = sys.modules
    before = set(modules)

    def purge():
        for name in sorted(set(modules) - before, reverse=True):
            if name != "leakscope" and not name.startswith("leakscope."):
                continue
            module = modules.pop(name, None)
            parent, _, child = name.rpartition(".")
            try:
                if parent in modules and getattr(modules[parent], child, None) is module:
                    delattr(modules[parent], child)
            except Exception:
                pass

    def fail(text):
        try:
            with open(directory + "/" + ERROR_FILE, "w") as f:
                f.write(text)
        except Exception:
            pass

    def main():
        sock = None
        try:
            import socket
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(address)
            added = "leakscope" not in modules
            if added:
                sys.path.insert(0, directory)
            try:
                from leakscope.attach import agent
            finally:
                if added:
                    try:
                        sys.path.remove(directory)
                    except ValueError:
                        pass
            agent.serve(sock, config)
            del agent
        except BaseException as exc:
            text = type(exc).__name__ + ": " + str(exc)
            if sock is None:
                fail(text)
            else:
                try:
                    import json
                    sock.sendall(json.dumps({"kind": "error", "message": text}).encode() + b"\\n")
                except Exception:
                    pass
        finally:
            purge()
            if sock is not None:
                left = sorted(set(modules) - before)
                try:
                    names = ",".join('"' + n + '"' for n in left if n.replace(".", "").replace("_", "").isalnum())
                    sock.sendall(b'{"kind":"bye","imported":[' + names.encode() + b"]}\\n")
                except Exception:
                    pass
                try:
                    sock.close()
                except Exception:
                    pass

    try:
        import threading
        threading.Thread(target=main, name=THREAD_NAME, daemon=True).start()
    except BaseException as exc:
        fail(type(exc).__name__ + ": " + str(exc))


_leakscope_attach(DIRECTORY, ADDRESS, CONFIG)
"""


def source(directory: str, address: str, config: Mapping[str, object]) -> str:
    """The bootstrap's Python source, for a private ``directory`` and the socket ``address``.

    ``config`` (numbers, strings and booleans) is passed to the agent.

    >>> "leakscope-attach" in source("/tmp/d", "/tmp/d/s", {"duration": 5.0})
    True
    """
    for key, value in config.items():
        if not isinstance(key, str) or not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"config values must be numbers, strings or booleans: {key!r}")
    return (
        _TEMPLATE.replace("ERROR_FILE", repr(ERROR_FILE))
        .replace("THREAD_NAME", repr(THREAD_NAME))
        .replace("DIRECTORY", repr(directory))
        .replace("ADDRESS", repr(address))
        .replace("CONFIG", repr(dict(config)))
    )


def one_liner(code: str) -> str:
    """A statement running ``code`` that binds no name where it runs (``__main__``).

    Only hex digits and ASCII punctuation: safe inside a C string literal in gdb.

    >>> one_liner("x = 1")
    "exec(bytes.fromhex('78203d2031'), {'__name__': 'leakscope_attach_bootstrap'})"
    """
    return f"exec(bytes.fromhex({code.encode().hex()!r}), {{'__name__': 'leakscope_attach_bootstrap'}})"
