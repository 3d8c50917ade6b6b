"""The Iceberg catalog seam: pyiceberg's REST client, pointed at SeaweedFS (embedded) or Nessie (compose).

Only configuration differs between the stacks; nothing else in the code knows which catalog it has.

The S3 endpoint a client is configured with wins over the one the catalog hands out with a table:
Nessie hands out the endpoint it reaches storage by (``http://seaweedfs:8333`` inside the compose
network), which a client on the host cannot resolve; pyiceberg would otherwise prefer the server's.
"""

from __future__ import annotations

from pyiceberg.catalog.rest import RestCatalog
from pyiceberg.io import FileIO
from pyiceberg.typedef import EMPTY_DICT, Properties

from infrastructure.iceberg_compat import cache_transaction_metadata
from infrastructure.settings import Settings

# the client's own view of where storage is; credentials and signing stay as the server says
CLIENT_WINS = ("s3.endpoint",)


def file_io_properties(client: Properties, server: Properties) -> dict[str, str]:
    """The FileIO properties of a loaded table: the server's, except where the client knows better."""
    return {**client, **server, **{k: client[k] for k in CLIENT_WINS if k in client}}


class LakehouseCatalog(RestCatalog):
    def _load_file_io(self, properties: Properties = EMPTY_DICT, location: str | None = None) -> FileIO:
        return super()._load_file_io(file_io_properties(self.properties, properties), location)


def s3_properties(settings: Settings) -> dict[str, str]:
    """pyarrow S3 FileIO properties for the warehouse (path-style, explicit credentials)."""
    key, secret = settings.s3.credentials()
    return {
        "s3.endpoint": settings.s3.endpoint,
        "s3.access-key-id": key,
        "s3.secret-access-key": secret,
        "s3.region": settings.s3.region,
        "s3.path-style-access": "true",
    }


def load_catalog(settings: Settings) -> LakehouseCatalog:
    """A REST catalog client; fails fast with the catalog's own message if credentials are wrong."""
    cache_transaction_metadata()  # pyiceberg 0.12's per-commit metadata copies (see iceberg_compat)
    # a catalog without an OAuth2 server (Nessie in compose) must not be sent to a token endpoint
    auth = {"credential": settings.catalog_credential()} if settings.catalog.auth == "oauth2" else {}
    return LakehouseCatalog(
        settings.catalog.name,
        uri=settings.catalog.uri,
        warehouse=settings.catalog.warehouse,
        **auth,
        **s3_properties(settings),
    )
