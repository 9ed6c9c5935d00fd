"""``{{ widget.attrs|html_attrs }}``: a widget's attributes as Django's
``django/forms/widgets/attrs.html`` writes them, in one call instead of a loop
of template nodes per attribute (movies/admin/rows.py says why it matters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def html_attrs(attrs: Mapping[str, Any]) -> SafeString:
    """`` name="value"`` for each attribute; `` name`` alone for True; none for False."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {conditional_escape(name)}")
        else:
            # As the template's value|stringformat:'s': str(), escaped unless safe.
            parts.append(f' {conditional_escape(name)}="{conditional_escape(value)}"')
    return mark_safe("".join(parts))
