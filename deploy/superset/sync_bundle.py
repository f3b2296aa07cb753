"""Second half of the import, run by provision.sh after `superset import-dashboards`.

`superset import-dashboards` creates what is missing and overwrites the dashboard
itself, but keeps any database, dataset or chart that already exists (Superset's
dashboard importer hard-codes overwrite=False for them). So a second provisioning
would keep an old database URL and old chart definitions. This script re-imports
the same bundle with Superset's own database, dataset and chart import commands,
with overwrite=True: every object with one of the bundle's fixed UUIDs is updated
in place (same ids, so the dashboard keeps its charts), and nothing else is touched.

Usage (inside the Superset venv, with SUPERSET_CONFIG_PATH set):
    python sync_bundle.py BUNDLE_ZIP ADMIN_USERNAME
Prints one summary line; exits non-zero with Superset's validation messages on error.
"""

import sys
import zipfile

import yaml


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    bundle_path, username = sys.argv[1], sys.argv[2]

    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db, security_manager
        from superset.commands.chart.importers.v1 import ImportChartsCommand
        from superset.commands.database.importers.v1 import ImportDatabasesCommand
        from superset.commands.dataset.importers.v1 import ImportDatasetsCommand
        from superset.commands.exceptions import CommandInvalidError
        from superset.commands.importers.v1.utils import get_contents_from_bundle
        from superset.models.dashboard import Dashboard
        from superset.utils.core import override_user

        with zipfile.ZipFile(bundle_path) as bundle:
            contents = get_contents_from_bundle(bundle)
        user = security_manager.find_user(username=username)
        if user is None:
            print(f"sync_bundle: no Superset user {username!r}", file=sys.stderr)
            return 1

        steps = [
            (ImportDatabasesCommand, "Database", ("databases/",)),
            (ImportDatasetsCommand, "SqlaTable", ("databases/", "datasets/")),
            (ImportChartsCommand, "Slice", ("databases/", "datasets/", "charts/")),
        ]
        with override_user(user):
            for command, type_, prefixes in steps:
                part = {k: v for k, v in contents.items() if k.startswith(prefixes)}
                part["metadata.yaml"] = yaml.safe_dump(
                    {"version": "1.0.0", "type": type_}
                )
                try:
                    command(part, overwrite=True).run()
                except CommandInvalidError as ex:
                    print(f"sync_bundle: {type_} import rejected the bundle:",
                          file=sys.stderr)
                    for name, messages in ex.normalized_messages().items():
                        print(f"  {name}: {messages}", file=sys.stderr)
                    return 1

        dashboards = {
            yaml.safe_load(v)["uuid"]
            for k, v in contents.items()
            if k.startswith("dashboards/")
        }
        for uuid in sorted(dashboards):
            dashboard = db.session.query(Dashboard).filter_by(uuid=uuid).one_or_none()
            if dashboard is None:
                print(f"sync_bundle: dashboard {uuid} is missing after the import",
                      file=sys.stderr)
                return 1
            print(
                f"dashboard {dashboard.dashboard_title!r} (id {dashboard.id}, "
                f"slug {dashboard.slug}): {len(dashboard.slices)} charts"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
