"""Ready-made templates for the dealership's moments (../shared/domain.md): the parts of a sale worth
asking about separately, the parts of a service visit, and the handling of a complaint. Created for
a dealership on first use; the dealership edits them (each edit is a new version)."""

from __future__ import annotations

from typing import Any

# (code, name, moment, title, intro, questions: (key, section, kind, text, choices, required))
READY_MADE: list[dict[str, Any]] = [
    {
        "code": "sales",
        "name": "购车满意度",
        "moment": "sales",
        "title": "感谢您选择我们！请为这次购车体验打分",
        "intro": "只需一分钟，您的意见会直接送到门店总经理。",
        "questions": [
            ("showroom", "展厅环境", "rating", "展厅的环境与接待", [], True),
            ("consultant", "销售顾问", "rating", "销售顾问的专业与态度", [], True),
            ("negotiation", "洽谈", "rating", "价格与方案洽谈是否透明", [], True),
            ("delivery", "交车", "rating", "交车过程与车辆讲解", [], True),
            ("care_call", "交车后关怀", "rating", "交车后的关怀回访", [], False),
            ("overall", "总体", "rating", "总体而言，您对这次购车满意吗？", [], True),
            ("nps", "总体", "nps", "您有多大可能把我们推荐给亲友？", [], True),
            (
                "source",
                "总体",
                "single",
                "您是如何了解到我们门店的？",
                ["亲友推荐", "汽车网站", "路过", "厂家活动", "其他"],
                False,
            ),
            ("comment", "总体", "text", "还有什么想告诉我们的？", [], False),
        ],
    },
    {
        "code": "service",
        "name": "售后服务满意度",
        "moment": "service",
        "title": "感谢您来店保养维修！请为这次服务打分",
        "intro": "只需一分钟，帮助我们做得更好。",
        "questions": [
            ("reception", "接待", "rating", "服务顾问的接待与问诊", [], True),
            ("repair_quality", "维修质量", "rating", "维修保养的质量（一次修好）", [], True),
            ("timeliness", "及时性", "rating", "是否按承诺时间交车", [], True),
            ("price", "价格", "rating", "收费是否透明合理", [], True),
            ("cleanliness", "清洁", "rating", "交车时车辆内外的清洁", [], True),
            ("overall", "总体", "rating", "总体而言，您对这次服务满意吗？", [], True),
            ("nps", "总体", "nps", "您有多大可能把我们的售后服务推荐给亲友？", [], True),
            (
                "improve",
                "总体",
                "multi",
                "您希望我们改进哪些方面？",
                ["等待时间", "价格", "沟通", "预约", "休息区"],
                False,
            ),
            ("comment", "总体", "text", "还有什么想告诉我们的？", [], False),
        ],
    },
    {
        "code": "complaint",
        "name": "投诉处理满意度",
        "moment": "complaint",
        "title": "您的问题处理得怎么样？",
        "intro": "感谢您给我们改进的机会。",
        "questions": [
            ("resolved", "处理结果", "single", "您的问题解决了吗？", ["已解决", "部分解决", "未解决"], True),
            ("attitude", "处理过程", "rating", "处理人员的态度", [], True),
            ("speed", "处理过程", "rating", "处理的速度", [], True),
            ("overall", "总体", "rating", "总体而言，您对这次投诉处理满意吗？", [], True),
            ("comment", "总体", "text", "还有什么想告诉我们的？", [], False),
        ],
    },
]
