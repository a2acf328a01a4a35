from tests.coldchain import (  # noqa: F401  (fixtures)
    _no_rate_limit,
    facilities_user,
    fridge,
    gateway,
    nurse_user,
    post,
    relayed,
)
