"""A generated city on Zibo's real district codes: regular grid lattices round each district's real centre, every
grid inside its district's real boundary (the web cockpit's map, dashboards/web/static/vendor/zibo.geojson; 周村区's
lattice sits 500 m north of its centre for that).

Deterministic (a fixed seed), about 1,600 grids, street/community/road names in the local style and the
named places the simulator needs. Used as the default registry and as the loader's test data.
"""
from __future__ import annotations

import random
from itertools import chain, count
from dataclasses import dataclass

from shapely.geometry import box

from cityops.registry.model import Grid, PoiKind, StandardAddress, Unit

CITY = "淄博市"
PROVINCE = "山东省"
# One grid is about 500 m × 500 m at 36.8° N.
DLAT, DLON = 0.0045, 0.0056
STREET_BLOCK = (6, 6)      # grids per street: rows × cols
COMMUNITY_BLOCK = (2, 3)   # grids per community
SEED = 370300


@dataclass(frozen=True)
class DistrictPlan:
    code: str
    name: str
    lat: float
    lon: float
    rows: int
    cols: int
    streets: tuple[str, ...]
    roads: tuple[str, ...]
    markets: tuple[str, ...] = ()


DISTRICTS: tuple[DistrictPlan, ...] = (
    DistrictPlan("370302", "淄川区", 36.643, 117.967, 12, 18,
                 ("般阳路街道", "松龄路街道", "钟楼街道", "将军路街道", "昆仑镇", "洪山镇"),
                 ("般阳路", "松龄路", "将军路", "淄城路", "兴学街", "张博路", "昆仑路", "洪山路", "鲁泰路",
                  "西环路", "东环路", "北环路", "钟楼街", "孝妇河路", "商场街"),
                 ("般阳便民市场", "松龄路夜市")),
    DistrictPlan("370303", "张店区", 36.810, 118.050, 24, 24,
                 ("车站街道", "和平街道", "公园街道", "科苑街道", "体育场街道", "杏园街道", "湖田街道",
                  "马尚街道", "四宝山街道", "房镇镇", "傅家镇", "中埠镇", "南定镇", "沣水镇", "卫固镇",
                  "石桥街道"),
                 ("柳泉路", "共青团路", "人民路", "华光路", "新村路", "联通路", "金晶大道", "中润大道",
                  "北京路", "上海路", "西二路", "西五路", "西六路", "西七路", "西八路", "张周路", "鲁泰大道",
                  "世纪路", "南京路", "杭州路", "昌国路", "和平路", "洪沟路", "东一路", "东二路", "东三路",
                  "东四路", "海岱大道", "商场东街", "林泽街"),
                 ("八大局便民市场", "华光路烧烤街", "西五路夜市", "杏园农贸市场", "海岱楼烧烤城",
                  "牧羊村烧烤街", "和平农贸市场")),
    DistrictPlan("370304", "博山区", 36.494, 117.862, 12, 12,
                 ("城东街道", "城西街道", "山头街道", "域城镇"),
                 ("中心路", "新博路", "颜山路", "峨眉山路", "白塔路", "福门街", "税务街", "大街", "西冶街",
                  "山头路"),
                 ("博山农贸市场", "西冶街美食街")),
    DistrictPlan("370305", "临淄区", 36.826, 118.309, 12, 18,
                 ("闻韶街道", "稷下街道", "雪宫街道", "辛店街道", "齐都镇", "皇城镇"),
                 ("临淄大道", "桓公路", "晏婴路", "齐园路", "雪宫路", "闻韶路", "稷下路", "牛山路", "齐兴路",
                  "石化大道", "管仲路", "太公路", "大顺路", "齐鲁大道", "一诺路"),
                 ("临淄农贸市场", "齐都烧烤街")),
    DistrictPlan("370306", "周村区", 36.808, 117.870, 12, 12,
                 ("丝绸路街道", "青年路街道", "永安街道", "城北路街道"),
                 ("丝绸路", "青年路", "正阳路", "新建路", "东门路", "大街", "银子市街", "城北路", "站北路",
                  "北环路"),
                 ("周村大街便民市场", "周村烧饼美食街")),
    DistrictPlan("370321", "桓台县", 36.959, 118.097, 12, 12,
                 ("索镇街道", "少海街道", "起凤镇", "田庄镇"),
                 ("中心大街", "张北路", "建设街", "兴桓路", "东岳路", "少海路", "唐山路", "起凤路", "果里路",
                  "华沟路"),
                 ("索镇农贸市场",)),
    DistrictPlan("370322", "高青县", 37.170, 117.826, 6, 12,
                 ("田镇街道", "芦湖街道"),
                 ("高苑路", "青城路", "黄河路", "芦湖路", "千乘湖路", "大芦湖大道", "田镇路"),
                 ("高青农贸市场",)),
    DistrictPlan("370323", "沂源县", 36.185, 118.171, 6, 12,
                 ("历山街道", "南麻街道"),
                 ("鲁山路", "沂河路", "胜利路", "振兴路", "瑞阳路", "人民路", "历山路"),
                 ("沂源便民市场",)),
)

# Community names are composed; villages in towns, 社区 in sub-districts.
_FIRST = "和平华光柳泉金晶新村杏园西苑东苑北苑南苑翠园春华秋实明珠丽景锦绣银座鑫盛福泰康乐如意" \
         "阳光怡然祥和东坡湖滨双山南定北旺东风红旗团结幸福兴隆中兴振华"
_COMMUNITY_MIDDLE = ("", "", "路", "苑", "里", "园", "街")
_VILLAGE = "王李张刘陈杨赵孙周吴徐朱马胡郭何高林罗郑梁谢宋唐韩冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋"
_VILLAGE_END = ("家村", "家庄村", "家店村", "庄村", "家疃村", "家寨村", "官庄村", "家峪村")
_COMPOUND = ("花园", "小区", "苑", "生活区", "家园", "新村", "公寓", "雅居", "名邸", "华府")
_SCHOOL = ("实验小学", "第一小学", "第二中学", "外国语学校", "师范附属小学", "第三中学", "育才小学", "希望小学")
_SITE = ("棚改安置房项目", "地铁配套道路工程", "商业综合体项目", "雨污分流改造工程", "老旧小区改造工程",
         "学校扩建工程", "住宅小区三期项目")
_PHASE = ("二期", "三期", "四期", "五期", "东区", "西区", "南区", "北区")
_LOW = ("铁路桥洞", "下穿立交", "低洼路段", "涵洞")


def _community_names(rng: random.Random, town: bool, n: int, taken: set[str]) -> list[str]:
    names: list[str] = []
    for _ in range(100 * n):
        if len(names) == n:
            break
        if town:
            name = rng.choice(_VILLAGE) + rng.choice(_VILLAGE_END)
        else:
            i = rng.randrange(0, len(_FIRST) - 1, 2)
            name = _FIRST[i:i + 2] + rng.choice(_COMMUNITY_MIDDLE) + "社区"
        if name not in taken:
            taken.add(name)
            names.append(name)
    else:
        raise RuntimeError("community name pools are too small for the plan")
    return names


def generate() -> tuple[list[Unit], list[Unit], list[Unit], list[Grid], list[StandardAddress]]:
    """(districts, streets, communities, grids, addresses), the same every run."""
    rng = random.Random(SEED)
    districts: list[Unit] = []
    streets: list[Unit] = []
    communities: list[Unit] = []
    grids: list[Grid] = []
    addresses: list[StandardAddress] = []
    for d in DISTRICTS:
        districts.append(Unit(d.code, d.name))
        north = d.lat + d.rows * DLAT / 2
        west = d.lon - d.cols * DLON / 2
        sr, sc = STREET_BLOCK
        cr, cc = COMMUNITY_BLOCK
        taken: set[str] = set()
        cell: dict[tuple[int, int], Grid] = {}
        # Streets, communities and grids are each numbered west→east, then north→south.
        for si, (r0, c0) in enumerate((r, c) for r in range(0, d.rows, sr) for c in range(0, d.cols, sc)):
            s_code, s_name = f"{d.code}{si + 1:03d}", d.streets[si]
            streets.append(Unit(s_code, s_name, d.code))
            blocks = [(r, c) for r in range(r0, r0 + sr, cr) for c in range(c0, c0 + sc, cc)]
            names = _community_names(rng, s_name.endswith("镇"), len(blocks), taken)
            for ci, ((r1, c1), c_name) in enumerate(zip(blocks, names)):
                c_code = f"{s_code}{ci + 1:03d}"
                communities.append(Unit(c_code, c_name, s_code))
                for gi, (r, c) in enumerate((r, c) for r in range(r1, r1 + cr) for c in range(c1, c1 + cc)):
                    top, left = north - r * DLAT, west + c * DLON
                    poly = box(round(left, 6), round(top - DLAT, 6), round(left + DLON, 6), round(top, 6))
                    g = Grid(code=f"{c_code}{gi + 1:03d}", name=f"{c_name}第{gi + 1}网格", district_name=d.name,
                             street_name=s_name, community_name=c_name,
                             centroid=(round(top - DLAT / 2, 6), round(left + DLON / 2, 6)), polygon=poly)
                    grids.append(g)
                    cell[(r, c)] = g
        addresses += _addresses(rng, d, cell)
    return districts, streets, communities, grids, addresses


def _addresses(rng: random.Random, d: DistrictPlan, cell: dict[tuple[int, int], Grid]) -> list[StandardAddress]:
    """Roads run along every second grid row (east-west) and column (north-south); each grid gets a
    house number on each, a residential compound, and some grids a named place."""
    prefix = f"{PROVINCE}{CITY}{d.name}"
    roads = list(d.roads)
    rng.shuffle(roads)
    ew = {r: roads[(r // 2) % len(roads)] for r in range(0, d.rows, 2)}
    ns = {c: roads[(len(ew) + c // 2) % len(roads)] for c in range(0, d.cols, 2)}
    out: list[StandardAddress] = []
    seq = 0

    def add(g: Grid, lat: float, lon: float, road: str, number: int | None, poi: str = "",
            kind: PoiKind | None = None, suffix: str = "") -> None:
        nonlocal seq
        seq += 1
        num = f"{number}号" if number is not None else ""
        out.append(StandardAddress(f"{d.code}{seq:06d}", f"{prefix}{road}{num}{suffix}", g.code,
                                   round(lat, 6), round(lon, 6), road, number, poi, kind))

    compounds: set[str] = set()
    for (r, c), g in sorted(cell.items()):
        lat0, lon0 = g.centroid
        # House numbers grow west→east and north→south; odd numbers on the north/west side.
        add(g, lat0 + DLAT * 0.3, lon0 + DLON * rng.uniform(-0.35, 0.35), ew[r - r % 2], 2 * (c * 20 + rng.randrange(1, 20)) - 1)
        add(g, lat0 + DLAT * rng.uniform(-0.35, 0.35), lon0 - DLON * 0.3, ns[c - c % 2], 2 * (r * 20 + rng.randrange(1, 20)))
        base = g.community_name[:2] + rng.choice(_COMPOUND)
        compound = next(f"{base}{p}" for p in chain(("",), _PHASE, map(str, count(2)))
                        if f"{base}{p}" not in compounds)
        compounds.add(compound)
        add(g, lat0 + DLAT * rng.uniform(-0.2, 0.2), lon0 + DLON * rng.uniform(-0.2, 0.2), ns[c - c % 2],
            2 * (r * 20 + rng.randrange(1, 20)), compound, PoiKind.residential, compound)
        draw = rng.random()
        if draw < 0.04:
            s = f"{d.name[:2]}{g.community_name[:2]}{rng.choice(_SCHOOL)}"
            add(g, lat0 - DLAT * 0.1, lon0 + DLON * 0.1, ns[c - c % 2], 2 * (r * 20 + 11), s, PoiKind.school, s)
        elif draw < 0.07:
            s = f"{g.community_name[:2]}{rng.choice(_SITE)}工地"
            add(g, lat0 + DLAT * 0.1, lon0 - DLON * 0.1, ew[r - r % 2], 2 * (c * 20 + 15) - 1, s, PoiKind.construction, s)
        elif draw < 0.09:
            road = ew[r - r % 2]
            s = f"{road}{rng.choice(_LOW)}"
            add(g, lat0 + DLAT * 0.3, lon0, road, None, s, PoiKind.low_lying, s.removeprefix(road))
    # Markets and barbecue streets cluster in the centre of town, a few grids apart.
    centre = sorted(cell.items(), key=lambda kv: (abs(kv[0][0] - d.rows / 2) + abs(kv[0][1] - d.cols / 2), kv[0]))
    for m, ((r, c), g) in zip(d.markets, centre[::3]):
        add(g, g.centroid[0] + DLAT * 0.05, g.centroid[1] + DLON * 0.05, ew[r - r % 2], 2 * (c * 20 + 12) - 1, m, PoiKind.market, m)
    return out
