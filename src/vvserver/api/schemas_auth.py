"""Request/response models for accounts and sessions."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from vvserver.api.endpoints import ApiModel
from vvserver.api.schemas_facilities import Name

EmailLanguage = Literal["en", "es"]


class SignUpIn(ApiModel):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=1, max_length=256)
    name: Name
    date_of_birth: date
    phone: str = Field(min_length=5, max_length=32, pattern=r"^\+?[0-9 ()-]{5,32}$")
    language: EmailLanguage = Field(
        default="en",
        description="the language of the account's e-mails: the page's language at sign-up",
    )


class LoginIn(ApiModel):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class TokenIn(ApiModel):
    token: str = Field(min_length=10, max_length=200)


class ResetRequestIn(ApiModel):
    email: str = Field(min_length=3, max_length=254)


class ResetConfirmIn(ApiModel):
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=1, max_length=256)


class ChangePasswordIn(ApiModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class AccountOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    agency_id: int | None
    facility_id: int | None
    email_verified: bool
    id_status: str
    language: EmailLanguage = Field(description="the language the account's e-mails are written in")


class LanguageIn(ApiModel):
    language: EmailLanguage = Field(description="the language of the account's e-mails from now on")


class SignUpAcceptedOut(BaseModel):
    """The same answer whether or not the address already had an account."""

    email: str = Field(description="the address, normalised; a message is on its way to it")


class SessionOut(BaseModel):
    account: AccountOut
    csrf_token: str
