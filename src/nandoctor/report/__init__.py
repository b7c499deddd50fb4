"""Renderers: findings and diagnoses to text (rich), JSON, SARIF and HTML."""
