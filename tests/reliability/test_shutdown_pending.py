"""shutdown with a generator handler still pending: pygls 2.1.1 iterated the futures dict while the
cancel's synchronous done-callbacks popped from it ("dictionary changed size during iteration")."""

from __future__ import annotations

from concurrent.futures import Future

from lsprotocol import types

from diffgem_lsp.server import create_server


def test_shutdown_cancels_pending_concurrent_futures_without_error() -> None:
    server = create_server()
    protocol = server.protocol
    pending: list[Future] = []
    for msg_id in ("a", "b", "c"):
        # As pygls' _execute_handler does for a generator handler: a concurrent Future whose done
        # callback (_send_handler_result) pops it from the dict.
        future: Future = Future()
        future.add_done_callback(lambda _f, i=msg_id: protocol._request_futures.pop(i, None))
        protocol._request_futures[msg_id] = future
        pending.append(future)

    handler = protocol.fm.builtin_features[types.SHUTDOWN]
    gen = handler(None)
    for _step in gen:  # the user handler is yielded first; pygls would call it
        pass

    assert all(f.cancelled() for f in pending), "the pending handlers were not cancelled"
    assert protocol._request_futures == {}
    assert protocol._shutdown
