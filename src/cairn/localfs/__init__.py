"""Local file work shared by the stores and the HTTP client: hashing and atomic writes."""
