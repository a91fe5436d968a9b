"""HTTP edge: pydantic request/response models, routes, middleware, OpenAPI."""
