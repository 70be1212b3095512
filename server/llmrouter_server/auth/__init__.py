"""Who is calling: principals, API keys, and what each may see."""
