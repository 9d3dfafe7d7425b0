"""Dataset catalogs.

Dataset catalogs: index readers that turn official split/annotation files into a numpy `VideoTable`
(`table`), one module per dataset (`ucf101`, `hmdb51`, `kinetics`, `csv`) and the text-file helpers
they share (`files`).
"""

from vidssl.data.catalogs.table import (
    STORAGES,
    CatalogSpec,
    SplitEntries,
    VideoTable,
    align,
    known,
    load,
    register,
)

__all__ = [
    "STORAGES",
    "CatalogSpec",
    "SplitEntries",
    "VideoTable",
    "align",
    "known",
    "load",
    "register",
]
