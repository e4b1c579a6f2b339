"""Complaint texts composed from many parts, so no category has one template.

opening + (time) + place + subject + (detail) + (feeling) + (request). Subjects per category include
the hard pairs of TAXONOMY.md phrased the way citizens say them; 其他 covers what fits nothing.
"""
from __future__ import annotations

import random

from cityops.registry import CityRegistry, PoiKind, StandardAddress

OPENINGS = ("", "", "您好，", "你好，", "我要反映一个问题，", "市民来电反映：", "来电人反映，", "我是附近居民，",
            "想投诉一下，", "麻烦问一下，", "再次反映，", "我之前打过电话了，", "请帮忙处理一下，", "我家住在附近，",
            "早就想打这个电话了，", "网友反映：", "群众来电称，")
TIMES = ("", "", "", "最近一周", "这几天", "每天晚上", "今天早上", "昨天夜里", "一到周末", "已经一个多月了，", "从上个月开始",
         "每天凌晨", "今天下午", "晚上十点以后", "天天", "刚才")
PLACE_FORMS = ("在{p}", "{p}", "{p}这里", "{p}附近", "在{p}门口", "{p}那一块", "位于{p}", "{p}对面")
FEELINGS = ("", "", "严重影响居民休息。", "太闹心了。", "老人孩子都受不了。", "来来往往的人都有意见。", "影响市容。",
            "很不安全。", "说了好几次都没人管。", "大家意见很大。", "实在忍不了了。", "希望引起重视。")
REQUESTS = ("", "希望尽快处理。", "请有关部门管一管。", "麻烦派人来看看。", "请尽快安排人处理，谢谢。", "要求彻底整治。",
            "希望相关部门能给个答复。", "请城管来处理一下。", "希望能早点解决。", "请给个说法。")

SUBJECTS: dict[str, tuple[str, ...]] = {
    "私搭乱建": ("有人私自搭建彩钢板房", "楼顶上违章加盖了一层", "一楼住户在院子里私搭棚子", "小区绿地被人圈起来盖了房子",
             "有商户在门前搭了个铁皮棚", "有人在楼道外面私自扩建阳台", "违建的板房越盖越大"),
    "暴露垃圾": ("路边堆了一大堆生活垃圾没人清", "绿化带里扔满了垃圾袋", "有人把装修垃圾倒在空地上", "垃圾随地乱扔，苍蝇乱飞",
             "拐角处的垃圾堆好几天没人清理了", "河边有人倾倒垃圾"),
    "垃圾满溢": ("垃圾桶满了溢出来没人清运", "垃圾箱已经满得盖不上了", "小区垃圾站爆满，垃圾堆到了外面", "分类垃圾桶全满了，臭气熏天",
             "垃圾桶满溢好几天都没人来收"),
    "道路保洁": ("路面上全是泥土和灰尘没人打扫", "马路上洒了一路的渣土，没人清扫", "人行道上都是落叶和烟头，保洁不到位",
             "路面脏得不行，一下雨全是泥", "清扫车好久没来了，路面很脏"),
    "油烟污染": ("饭店的排烟管道对着居民楼，油烟全飘进家里", "楼下餐馆油烟太大，窗户都不敢开", "烧烤店的油烟直排，没有装净化器",
             "饭店厨房油烟熏得人头疼", "餐饮店的油烟管道直接通到楼上", "小吃店排油烟，家里全是油烟味"),
    "噪声扰民": ("广场舞音响声音太大", "楼下KTV半夜还在唱", "酒吧音乐声震得窗户都响", "商户用大喇叭循环播放广告",
             "空调外机噪音很大整夜不停", "夜里有人喝酒大声喧哗"),
    "非法小广告": ("墙上、电线杆上贴满了小广告", "有人在楼道里喷涂办证的小广告", "小广告刚清理完第二天又贴上了",
               "单元门上全是开锁疏通的小广告", "人行道上被喷了很多电话号码广告", "小区里到处是乱贴的牛皮癣"),
    "违规户外广告": ("商户私自挂的大型广告牌摇摇欲坠", "楼顶的广告牌没有审批，刮风很危险", "店铺门头招牌超出规定尺寸",
                 "路边立了很多广告牌占了人行道", "LED广告屏晚上太亮，直射居民家里"),
    "施工扰民": ("工地夜间施工噪音太大", "工地晚上十一点了还在打桩", "工地渣土车进出扬尘很大", "施工现场没有围挡，尘土飞扬",
             "凌晨工地还在浇筑混凝土，吵得睡不着", "工地的塔吊晚上还在作业"),
    "占道经营": ("流动摊贩在马路上摆摊", "有人推着三轮车在路口卖水果", "早市摊位摆到了机动车道上", "路边小贩占了人行道卖菜",
             "夜市摊点把整条路都占了", "流动商贩堵在学校门口卖东西"),
    "店外经营": ("饭店把桌子摆到了店门外", "商店门前堆满了货物", "超市把货架摆到了店外人行道上", "修车铺在店门外修车",
             "店铺出店经营，门前堆物", "水果店把摊子摆出店门好几米"),
    "非机动车乱停放": ("共享单车乱停乱放堵住了路口", "电动车把盲道都占满了", "地铁口共享单车堆成了山",
                  "人行道上停满了电动车，行人没法走", "小区门口单车乱停，车开不进去"),
    "露天烧烤": ("有人在路边露天烧烤，烟熏火燎", "烧烤摊把炉子摆在了人行道上", "夜里马路边支起了烧烤炉子",
             "商户在店外露天烤串，浓烟滚滚", "路边摆了好几个烧烤摊，一直烤到后半夜", "广场上有人支炉子烤肉"),
    "道路积水": ("下雨后路面积水很深，车都过不去", "桥洞下积水没过膝盖", "路口积水严重，行人没法通行", "雨水排不出去，整条路都淹了",
             "下水道堵了，马路上一大片积水", "低洼路段积水已经漫到店铺里了"),
    "路面塌陷": ("路面突然塌了一个大坑", "马路中间出现塌陷，很危险", "人行道塌陷了一个大洞", "路面下沉出现一个深坑，车差点掉进去",
             "地面塌陷，旁边已经裂开了"),
    "井盖缺损": ("井盖丢了，留下一个大洞", "井盖破了一个角，踩上去晃动", "井盖被车压碎了", "窨井盖没有盖好，翘起来了",
             "雨水井盖缺失，晚上特别危险"),
    "路灯故障": ("路灯坏了好几天，晚上一片漆黑", "一排路灯都不亮", "路灯白天亮晚上不亮", "路灯一闪一闪的", "小区门口的路灯坏了没人修"),
    "道路破损": ("路面坑坑洼洼，骑车很容易摔倒", "马路上有好几个坑", "沥青路面裂开了很长的缝", "人行道地砖破损翘起",
             "路面破损严重，下雨就积一个个水坑"),
    "绿化损坏": ("绿化带里的树被人砍了", "草坪被车压坏了", "行道树倒了没人扶", "有人在绿地里种菜，把绿化毁了", "公园的灌木被人挖走了"),
    "物业服务": ("小区物业不作为，楼道灯坏了没人修", "物业乱收停车费", "电梯经常坏，物业不管", "小区物业服务太差，卫生没人打扫",
             "物业不给维修漏水的管道", "物业把小区绿地改成了停车位"),
    "其他": ("想咨询一下社保卡怎么补办", "公交车改线了，想问一下新的线路", "邻居家的狗总是半夜叫", "想问一下孩子入学需要什么材料",
           "家里的燃气费算得不对", "反映一下某培训机构退费难", "想咨询一下公积金提取的流程", "楼上邻居漏水到我家，协商不成",
           "想问问老年证在哪儿办"),
}
# Extra detail that sharpens or blurs a hard pair.
DETAILS: dict[str, tuple[str, ...]] = {
    "露天烧烤": ("炭火就在路边，烟很大", "人都坐到马路上吃", "不是店里，是在外面支的炉子"),
    "油烟污染": ("是后厨的排烟口", "净化器根本没开", "油烟从管道直接排出来"),
    "占道经营": ("不是店铺，是流动的小贩", "摊子摆在路中间"),
    "店外经营": ("是旁边那家店的东西", "店铺门前的货物占了一半的路"),
    "暴露垃圾": ("不是垃圾桶里的，是扔在地上的",),
    "垃圾满溢": ("垃圾桶本身已经装不下了",),
    "道路破损": ("坑不深但是很多",),
    "路面塌陷": ("坑很深，看着下面是空的",),
}


def compose(rng: random.Random, label: str, place: str) -> str:
    if label == "其他":  # questions and private disputes: no street scene to describe
        return f"{rng.choice(OPENINGS)}{rng.choice(SUBJECTS[label])}。{rng.choice(REQUESTS)}".strip("，")
    parts = [rng.choice(OPENINGS)]
    when = rng.choice(TIMES)
    where = rng.choice(PLACE_FORMS).format(p=place) if place else ""
    subject = rng.choice(SUBJECTS[label])
    if rng.random() < 0.5:
        parts.append(f"{when}{where}{subject}")
    else:
        parts.append(f"{where}，{when}{subject}" if where else f"{when}{subject}")
    if label in DETAILS and rng.random() < 0.4:
        parts.append(f"，{rng.choice(DETAILS[label])}")
    parts.append("。")
    parts.append(rng.choice(FEELINGS))
    parts.append(rng.choice(REQUESTS))
    if rng.random() < 0.05:  # callers leave contact details in the text: the streams must mask them
        parts.append(f"我的电话是1{rng.choice('3578')}{rng.randrange(10**8, 10**9)}。")
    return "".join(parts).replace("，，", "，").replace("。。", "。").strip("，")


def compose_short(rng: random.Random, label: str, place: str) -> str:
    """Grid workers and app users write tersely."""
    form = rng.choice(("{p}发现{s}，已拍照上报。", "{p}：{s}", "{s}，地点{p}。", "{p}{s}，请处理。", "巡查发现{p}{s}。"))
    return form.format(p=place, s=rng.choice(SUBJECTS[label]))


def spoken(rng: random.Random, registry: CityRegistry, a: StandardAddress) -> str:
    """How a caller names the place: rarely the full standard form."""
    district = registry.districts[a.district_code].name
    short = district[:-1] if len(district) > 2 else district
    forms = [a.text, f"{rng.choice((district, short, ''))}{a.road}{a.number or ''}{'号' if a.number else ''}",
             f"{a.road}上", f"{short}{a.road}{rng.choice(('附近', '路口', '东头', '西头'))}"]
    if a.poi:
        forms += [a.poi, f"{a.poi}{rng.choice(('门口', '附近', '旁边', '对面'))}", f"{short}{a.poi}"]
    comm = registry.communities.get(a.grid_code[:12])
    if comm:
        forms.append(f"{comm.name}{a.poi if a.kind == PoiKind.residential else ''}")
    return rng.choice(forms)
