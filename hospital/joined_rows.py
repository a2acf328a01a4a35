"""Several models selected side by side in one plain SQL query, and their instances made back
from a row: for hot paths (a device's token check, an upload's state lock) where compiling the
ORM query cost more than running it. The query is written once per process; the instances are
what `select_related` would have given."""

from __future__ import annotations

from django.db import connection, models


class JoinedModels:
    def __init__(self, models_and_aliases: list[tuple[type[models.Model], str]]) -> None:
        quote = connection.ops.quote_name
        self.models = [model for model, _ in models_and_aliases]
        self.fields = [list(model._meta.concrete_fields) for model in self.models]
        #: The select list, `alias.column` for every concrete field of every model, in order.
        self.columns = ", ".join(
            f"{alias}.{quote(f.column)}"
            for (_, alias), fields in zip(models_and_aliases, self.fields, strict=True)
            for f in fields
        )
        self.names = [[f.attname for f in fields] for fields in self.fields]
        self.pk_index = [
            fields.index(model._meta.pk)
            for model, fields in zip(self.models, self.fields, strict=True)
        ]
        self.converters = [
            [(i, f) for i, f in enumerate(fields) if hasattr(f, "from_db_value")]
            for fields in self.fields
        ]

    def instances(self, row: tuple) -> list[models.Model | None]:
        """One instance per model, None where an outer join found no row."""
        made: list[models.Model | None] = []
        start = 0
        for model, fields, names, pk_index, converters in zip(
            self.models, self.fields, self.names, self.pk_index, self.converters, strict=True
        ):
            values = list(row[start : start + len(fields)])
            start += len(fields)
            if values[pk_index] is None:
                made.append(None)
                continue
            for i, f in converters:
                values[i] = f.from_db_value(values[i], None, connection)
            made.append(model.from_db(connection.alias, names, values))
        return made
