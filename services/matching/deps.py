"""Dependency aliases of the matching service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.matching.catalogue.catalogue import Catalogue


def current_catalogue(request: Request) -> Catalogue:
    catalogue: Catalogue = request.app.state.catalogue
    return catalogue


CatalogueDep = Annotated[Catalogue, Depends(current_catalogue)]
