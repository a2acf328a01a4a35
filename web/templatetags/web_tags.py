from django import template

from web.access import pages_for

register = template.Library()


@register.simple_tag
def pages_for_user(user) -> dict[str, bool]:
    return pages_for(user)
