"""The MCP adapter: the vault's tools, resources and prompt over stdio and Streamable HTTP."""
