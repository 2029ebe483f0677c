# The default for new retraining policies only: a policy saved before keeps the margin it holds
# (staff may have chosen 0.005 themselves; a stored setting never moves silently).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('training', '0005_retrain_policy_stop_width'),
    ]

    operations = [
        migrations.AlterField(
            model_name='retrainpolicy',
            name='promotion_margin',
            field=models.FloatField(default=0.0, help_text='Dev NDCG@10 gain needed to promote.'),
        ),
    ]
