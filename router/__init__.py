"""The request router: DynamoDB's HTTP front door in front of the cluster.

    http.py     HTTP/1.1 on asyncio + httptools: keep-alive, pipelining, limits, timeouts
    front.py    the DynamoDB JSON 1.0 protocol: target, auth, validation, dispatch, error bodies
    auth.py     the Authenticator seam (AcceptAnyCredentials); sigv4.py verifies signatures
    backend.py  the Backend protocol the front door calls, one async method per operation
    bench.py    requests/s of the bare front door (python -m router.bench)

Assembled as::

    server = HttpServer(FrontDoor(backend, FrontConfig(region="us-east-1")).handle, HttpLimits())
    port = await server.start("127.0.0.1", 8000, reuse_port=True)
    ...
    await server.stop()
"""
