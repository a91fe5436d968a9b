"""HTTP-free domain code: typed functions over the store."""
