"""What the robot stands in: the scenario format (:mod:`.scenario`, JSON files in ``bm_envs/scenarios/``), the MuJoCo
scene builder (:mod:`.builder`: G1 + floor + obstacle slots + compiled mesh obstacles), mesh obstacles and their
signed distance fields (:mod:`.mesh_obstacles`), visual meshes (:mod:`.visual_meshes`) and offscreen rendering
(:mod:`.render`). Import the submodules."""
