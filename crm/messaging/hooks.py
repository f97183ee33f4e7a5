"""What the messaging app contributes: the outbox's three channels."""

from crm.messaging.channels import EmailAdapter, OutboxChannel, outbox_channels, sms_gateway, wechat_gateway

outbox_channels.register(OutboxChannel(name="email", adapter=EmailAdapter))
outbox_channels.register(OutboxChannel(name="sms", adapter=sms_gateway))
outbox_channels.register(OutboxChannel(name="wechat", adapter=wechat_gateway))
