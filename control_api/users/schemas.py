"""Requests and responses of ``/v1/users``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from control_api.schemas import RequestModel, UtcDatetime

__all__ = ["RoleName", "UserCreate", "UserRead", "UserUpdate"]

RoleName = Literal["owner", "admin", "editor", "viewer"]


class UserCreate(RequestModel):
    """A new member of the caller's organization."""

    email: EmailStr
    password: str = Field(min_length=1, max_length=256)
    full_name: str = Field(default="", max_length=200)
    role: RoleName = "viewer"


class UserUpdate(RequestModel):
    """A member's new role."""

    role: RoleName


class UserRead(BaseModel):
    """A member: the user and their role in this organization."""

    id: str
    email: str
    full_name: str
    role: RoleName
    created_at: UtcDatetime
