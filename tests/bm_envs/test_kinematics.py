"""v + ω × r: the one implementation, against np.cross and a body turning about the vertical."""

import numpy as np

from bm_envs.kinematics import point_lin_vel_w


def test_equals_the_cross_product_bit_for_bit():
    rng = np.random.default_rng(0)
    cvel, pts, com = rng.normal(size=(50, 6)), rng.normal(size=(50, 3)), rng.normal(size=3)
    assert np.array_equal(point_lin_vel_w(cvel, pts, com), cvel[:, 3:] + np.cross(cvel[:, :3], pts - com))


def test_a_point_on_a_turning_body_moves_tangentially():
    cvel = np.array([[0.0, 0.0, 2.0, 0.1, 0.0, 0.0]])  # ω = 2 rad/s about z, v = 0.1 m/s along x at the com
    v = point_lin_vel_w(cvel, np.array([[1.5, 0.0, 0.7]]), np.array([1.0, 0.0, 0.7]))  # 0.5 m along +x of the com
    np.testing.assert_allclose(v, [[0.1, 1.0, 0.0]])  # + ω × r = (0, 2·0.5, 0)
