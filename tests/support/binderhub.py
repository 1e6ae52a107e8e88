"""Reading a BinderHub-style page as its script would: ``window.pageConfig``."""

from __future__ import annotations

import json
import re
from typing import Any

_PAGE_CONFIG = re.compile(r"window\.pageConfig = (\{.*?\});\s*</script>", re.DOTALL)


def page_config(page: str) -> dict[str, Any]:
    """The ``window.pageConfig`` object of a page (BinderHub's ``buildToken`` lives there)."""
    found = _PAGE_CONFIG.search(page)
    assert found is not None, f"no window.pageConfig in the page: {page[:300]!r}"
    config: dict[str, Any] = json.loads(found[1])
    return config
