"""Dependency aliases of the matching service."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from services.matching.catalogue.catalogue import Catalogue
from services.matching.catalogue.store import CatalogueStore
from services.matching.requests.access import BrokerDirectory


async def current_catalogue(request: Request) -> Catalogue:
    catalogue: Catalogue = request.app.state.catalogue
    return catalogue


async def supplier_store(request: Request) -> CatalogueStore:
    """The catalogue's store: each supplier's current record, by id."""
    store: CatalogueStore = request.app.state.supplier_store
    return store


async def current_time(request: Request) -> datetime:
    """Now, in UTC, from the app's clock (tests move it past deadlines)."""
    now: datetime = request.app.state.clock()
    return now


async def broker_directory(request: Request) -> BrokerDirectory:
    brokers: BrokerDirectory = request.app.state.brokers
    return brokers


CatalogueDep = Annotated[Catalogue, Depends(current_catalogue)]
NowDep = Annotated[datetime, Depends(current_time)]
BrokersDep = Annotated[BrokerDirectory, Depends(broker_directory)]
SuppliersDep = Annotated[CatalogueStore, Depends(supplier_store)]
