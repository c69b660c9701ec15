"""Shopify's Admin API orders: the GraphQL client (``shopify_graphql``, the default), and the REST client with
what both share (``shopify``)."""
