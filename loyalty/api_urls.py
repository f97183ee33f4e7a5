"""REST API routes of loyalty (collected by config/api.py under /api/v1/)."""

from crm.api.routes import ApiRoutes
from loyalty.apis import (
    LedgerViewSet,
    LevelViewSet,
    LoyaltySummaryApi,
    MemberViewSet,
    RedemptionViewSet,
    ReferralViewSet,
    RewardViewSet,
)

api = ApiRoutes()
api.path("loyalty/summary/", LoyaltySummaryApi.as_view(), name="loyalty-summary")
api.viewset("loyalty/members", MemberViewSet, basename="loyalty-member")
api.viewset("loyalty/ledger", LedgerViewSet, basename="loyalty-ledger")
api.viewset("loyalty/rewards", RewardViewSet, basename="loyalty-reward")
api.viewset("loyalty/levels", LevelViewSet, basename="loyalty-level")
api.viewset("loyalty/redemptions", RedemptionViewSet, basename="loyalty-redemption")
api.viewset("loyalty/referrals", ReferralViewSet, basename="loyalty-referral")
