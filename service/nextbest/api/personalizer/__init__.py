"""Azure Personalizer's REST API over nextbest's engine, for applications written against it.

Off by default (``--http-address``). One policy per endpoint prefix: an application uses
``http://HOST:PORT/policies/{policy}`` as its Personalizer endpoint. The HTTP layer only
translates: validation, masks, exploration, joins and durability are the engine's, as for
gRPC. ``schemas`` (the JSON shapes), ``translate`` (JSON ↔ engine records), ``openapi``
(routes and ``/openapi.json``), ``app`` (the Starlette app), ``http`` (uvicorn in the loop).
"""
