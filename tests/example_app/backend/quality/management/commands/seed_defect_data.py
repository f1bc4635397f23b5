from django.core.management.base import BaseCommand

from quality.models import Defect

SAMPLES = [
    ("Scratch on housing surface", Defect.Severity.LOW, Defect.Status.OPEN),
    ("Torque spec exceeded on line 2", Defect.Severity.MEDIUM, Defect.Status.OPEN),
    ("Missing calibration record", Defect.Severity.HIGH, Defect.Status.OPEN),
    ("Label misprint on batch 4711", Defect.Severity.LOW, Defect.Status.CLOSED),
]


class Command(BaseCommand):
    help = "Create a few sample defects; idempotent (existing titles are left alone)."

    def handle(self, *args, **options):
        created = 0
        for title, severity, status in SAMPLES:
            _, was_created = Defect.objects.get_or_create(
                title=title, defaults={"severity": severity, "status": status}
            )
            created += was_created
        self.stdout.write(f"Created {created} sample defect(s); {Defect.objects.count()} in total.")
