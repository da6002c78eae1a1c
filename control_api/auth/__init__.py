"""Authentication: tokens (JWT), passwords (Argon2id), sign-up, login, refresh and sessions."""
