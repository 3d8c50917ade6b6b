"""The Iceberg catalog seam: pyiceberg's REST client, pointed at SeaweedFS (embedded) or Nessie (compose).

Only configuration differs between the stacks; nothing else in the code knows which catalog it has.
"""

from __future__ import annotations

from pyiceberg.catalog.rest import RestCatalog

from infrastructure.iceberg_compat import cache_transaction_metadata
from infrastructure.settings import Settings


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


def load_catalog(settings: Settings) -> RestCatalog:
    """A REST catalog client; fails fast with the catalog's own message if credentials are wrong."""
    cache_transaction_metadata()  # pyiceberg 0.12's per-commit metadata copies (see iceberg_compat)
    # a catalog without an OAuth2 server (Nessie in compose) must not be sent to a token endpoint
    auth = {"credential": settings.catalog_credential()} if settings.catalog.auth == "oauth2" else {}
    return RestCatalog(
        settings.catalog.name,
        uri=settings.catalog.uri,
        warehouse=settings.catalog.warehouse,
        **auth,
        **s3_properties(settings),
    )
