from django.core.management.base import BaseCommand

from defects.models import Defect

SAMPLES = [
    ("Burr on bracket edge", "BR-1042", "minor", "open"),
    ("Weld porosity on frame", "FR-2210", "major", "open"),
    ("Wrong connector fitted", "HN-0307", "critical", "closed"),
]


class Command(BaseCommand):
    help = "Add the guide's sample defects (idempotent: existing titles are left alone)."

    def handle(self, *args, **options):
        created = 0
        for title, part, severity, status in SAMPLES:
            _, new = Defect.objects.get_or_create(
                title=title, defaults={"part_number": part, "severity": severity, "status": status}
            )
            created += new
        self.stdout.write(f"Created {created} sample defect(s); {Defect.objects.count()} in total.")
