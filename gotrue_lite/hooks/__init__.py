"""The extension points: auth hooks over HTTP and PostgreSQL functions, and Netlify-style webhooks."""
